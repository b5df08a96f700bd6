"""The learned half of burstsr: merged image -> detailed image."""
