"""`python -m technician ...`"""

from technician.cli import main

main()
