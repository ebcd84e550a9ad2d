package cli

// Placeholders: configure-docker and import land with docker config editing.

func runConfigureDocker(e *env, args []string) int {
	return e.fail("configure-docker is not implemented yet")
}
func runImport(e *env, args []string) int { return e.fail("import is not implemented yet") }
