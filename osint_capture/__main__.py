from osint_capture.cli import main

main()
