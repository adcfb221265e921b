"""Entry point of ``python -m bench``."""

if __name__ == "__main__":
    from bench.run import main

    raise SystemExit(main())
