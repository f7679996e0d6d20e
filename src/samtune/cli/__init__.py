"""Command-line interface: thin wrappers, one library call per subcommand."""
