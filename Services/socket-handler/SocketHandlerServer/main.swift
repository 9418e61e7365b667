import SocketHandlerService

await SocketHandlerService.main()
