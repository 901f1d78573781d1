"""The `medsegai` command line. One module per subcommand; see ``main.py``."""
