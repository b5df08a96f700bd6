"""The classical half of burstsr: many aligned frames -> one image."""
