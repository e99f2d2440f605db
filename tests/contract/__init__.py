"""One suite every compute kind passes, with failure-injecting fakes (DESIGN.md, "Tests")."""
