"""Live sessions: options, the session and its parts (lifecycle, the page on screen, viewers
and watchers), the manager that routes links to sessions, and webhooks."""
