import NotificationsService
import ServiceRuntime

await NotificationsService.definition.main()
