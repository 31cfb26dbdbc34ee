"""Allow ``python -m camioc``."""

from camioc.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
