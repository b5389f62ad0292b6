"""The harness: emulators, balancer, workbench and the service start-up (never in an image)."""
