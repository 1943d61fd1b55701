"""The web console: accounts, the live board, statistics, management and metrics."""
