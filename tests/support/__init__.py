"""Real local stand-ins for cloud services, and readers of what the code under test wrote."""
