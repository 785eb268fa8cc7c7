"""The firmware targets shipped with l1ad (``*.yaml``); generated projects land beside them
in ``./firmware_projects/<target>/`` of the current directory."""
