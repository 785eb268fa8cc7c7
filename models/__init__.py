"""models stage of l1ad."""
