from churnops_trainer.cli import main

raise SystemExit(main())
