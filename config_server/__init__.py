"""config-server: answers the addresses of each service's copies from a JSON registry file."""
