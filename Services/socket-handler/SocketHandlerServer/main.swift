import ServiceRuntime
import SocketHandlerService

await SocketHandlerService.definition.main()
