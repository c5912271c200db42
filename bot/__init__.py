"""The GitHub side: webhook server, App authentication, routing, jobs, publishing, commands."""
