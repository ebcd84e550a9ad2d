package cli

// Placeholders: verify, login and logout land with the registry auth flows.

func runVerify(e *env, args []string) int { return e.fail("verify is not implemented yet") }
func runLogin(e *env, args []string) int  { return e.fail("login is not implemented yet") }
func runLogout(e *env, args []string) int { return e.fail("logout is not implemented yet") }
