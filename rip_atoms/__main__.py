from rip_atoms.cli import main

raise SystemExit(main())
