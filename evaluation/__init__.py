"""evaluation stage of l1ad."""
