from genseq.cli import main

main()
