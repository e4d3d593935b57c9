"""Open-licence fonts bundled for rendering on machines without system fonts (see README.md here)."""
