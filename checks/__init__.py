"""The domain: rule repositories, Sigma evaluation and the checks. Knows nothing of GitHub."""
