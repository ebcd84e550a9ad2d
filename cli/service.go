package cli

// Placeholder: install-service lands with the systemd units.

func runInstallService(e *env, args []string) int {
	return e.fail("install-service is not implemented yet")
}
