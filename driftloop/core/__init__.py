"""What the stages, the service and the controller share: one home for each piece."""
