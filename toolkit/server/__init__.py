"""Redis servers: binaries, scratch processes, reading and reaching live ones."""
