"""MAVLink 2 bridge to PX4 vehicles over UDP."""
