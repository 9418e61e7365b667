import AuthService
import ServiceRuntime

await AuthService.definition.main()
