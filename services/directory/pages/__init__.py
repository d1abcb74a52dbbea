"""The program's own pages, for the advocates and coordinators who run it: who is on call now in each area and
the gaps ahead (board), every role in an area from every source at once (calendar: a week, a month), and the
program kept through forms (advocates; areas and weekly schedules; rotations and calendars; overrides; escalation
policies and the hotline). Server-rendered (Jinja2, autoescaped), no script, usable on a phone; times are the
agency's own. They open with the dashboard's sign-in (its session cookie's path is /dashboard): an admin sees and
keeps any agency, a supervisor only their own (another is "not found", as the API says). A form validates with the
API's own model and saves with the API's own function, shows the problems by their fields with nothing changed,
refuses a POST from another site, and is audited as the API's changes are."""

from fastapi import APIRouter

from services.directory.pages import advocates, areas, board, calendar, overrides, policies, rotations

router = APIRouter()
for page in (calendar, advocates, areas, rotations, overrides, policies, board):
    router.include_router(page.router)
