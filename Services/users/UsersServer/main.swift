import UsersService
import ServiceRuntime

await UsersService.definition.main()
