"""Simulated loudspeaker payload (speaker protocol over MQTT) mounted on sim drones."""
