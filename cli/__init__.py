"""cli stage of l1ad."""
