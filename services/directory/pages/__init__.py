"""The program's own pages, for the advocates and coordinators who run it: who is on call now in each area and
the gaps ahead (the board), a week of every role in an area from every source at once (the week), and, each kept
through a form, the advocates, the overrides, the escalation policies, and the hotline with the CAD feed watch.
Server-rendered (Jinja2, autoescaped), no script, usable on a phone; times are the agency's own. They open with the
dashboard's sign-in (its session cookie's path is /dashboard): an admin sees any agency, a supervisor only their
own (another is "not found", as the API says) and keeps its program there, as in the API. A form that changes
something refuses a POST from another site and is audited as the API's changes are."""

from fastapi import APIRouter

from services.directory.pages import advocates, board, calendar, overrides, policies

router = APIRouter()
# The board's /{slug} last: it would not take the others' paths anyway.
for page in (calendar, advocates, overrides, policies, board):
    router.include_router(page.router)
