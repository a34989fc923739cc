"""Library discovery: naming rules, folder walking and the folder watcher."""
