"""``python -m groundbench`` (also what ``torchrun -m groundbench`` runs)."""

from groundbench.cli import main

if __name__ == "__main__":
    main()
