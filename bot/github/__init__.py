"""Talking to GitHub as a GitHub App: JWT and installation tokens (auth), retries and rate limits (retry), the
gidgethub client that applies both (client), and the per-App object handing out clients (app)."""
from .app import GitHubApp
from .auth import AppJWT, InstallationTokens
from .client import API_VERSION, GitHubClient
from .retry import RetryPolicy

__all__ = ["GitHubApp", "AppJWT", "InstallationTokens", "GitHubClient", "API_VERSION", "RetryPolicy"]
