import ServiceRuntime
import UsersService

await UsersService.definition.main()
