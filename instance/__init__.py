"""The Terreau instance: settings, database, accounts, web app and command line."""
