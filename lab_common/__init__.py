"""What every service of the lab needs: settings, logging, errors, discovery, HTTP and Hazelcast."""
