"""Templates and static assets of the HTML report (package data, loaded with jinja2.PackageLoader)."""
