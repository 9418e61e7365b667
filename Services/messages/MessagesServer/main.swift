import MessagesService
import ServiceRuntime

await MessagesService.definition.main()
