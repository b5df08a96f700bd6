from burstsr.cli import main

main()
