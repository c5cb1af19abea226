"""Everything Slack: request verification, the commands and buttons, message blocks, the notifier."""
