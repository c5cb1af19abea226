"""who_is_home's wing: the presence providers, the pure home / away rules, and the daemon."""
