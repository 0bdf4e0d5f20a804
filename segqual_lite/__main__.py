from segqual_lite.cli import main

raise SystemExit(main())
