"""Pages and JSON API of field-test scenarios (docs/scenarios.md).

Organisers (``custom:announcements:write``) publish, edit and delete scenarios and review
the applications; members read published scenarios and apply with a proposal; the
partner contact opens the scenario's private link (``scenarios/partner/TOKEN``, no login)
for the accepted applications, read-only.
"""

from __future__ import annotations

from tornado import web

from .content import APPLICATION_STATES, BadInput
from .scenarios import APPLICATION_FIELDS, PARTNER_KINDS, ScenarioStore
from .service import ApiBase, Base, _id, _templates

TOKEN = r"([A-Za-z0-9_-]{20,64})"


class ScenarioBase(Base):
    scenarios: ScenarioStore

    def render(self, template: str, **kwargs):
        super().render(template, partner_kinds=PARTNER_KINDS, states=APPLICATION_STATES, tz=self.store.default_tz,
                       **kwargs)

    def status_filter(self) -> str | None:
        status = self.get_query_argument("status", "") or None
        if status and status not in APPLICATION_STATES:
            raise BadInput(f"status: must be one of {', '.join(APPLICATION_STATES)}")
        return status

    def form(self) -> dict:
        """A scenario form's fields (an unticked draft box sends nothing: not a draft)."""
        data = self.payload()
        if "draft" not in data and self.request.headers.get("Content-Type", "").startswith("application/x-www-form"):
            data["draft"] = "off"
        return data


# ------------------------------------------------------------------ pages


class ScenariosPage(ScenarioBase):
    @web.authenticated
    def get(self):
        self.render("scenario_list.html", scenarios=self.scenarios.list(organiser=self.organiser, prefix=self.prefix),
                    applications=self.scenarios.applications(user=self.user))


class NewScenarioPage(ScenarioBase):
    @web.authenticated
    def get(self):
        self.require_organiser()
        self.render("scenario_edit.html", scenario={"partner_kind": "hospital"}, new=True)

    @web.authenticated
    def post(self):
        self.require_organiser()
        scenario = self.scenarios.create(self.form(), self.user, self.prefix)
        self.back_to(f"scenarios/{scenario['id']}")


class ScenarioPage(ScenarioBase):
    @web.authenticated
    def get(self, scenario_id):
        scenario = self.scenarios.get(_id(scenario_id), organiser=self.organiser, prefix=self.prefix)
        mine = self.scenarios.applications(user=self.user, scenario_id=scenario["id"])
        applications = self.scenarios.applications(scenario_id=scenario["id"]) if self.organiser else []
        self.render("scenario.html", scenario=scenario, application=mine[0] if mine else None,
                    applications=applications, fields=APPLICATION_FIELDS)

    @web.authenticated
    def post(self, scenario_id):
        self.require_organiser()
        self.scenarios.update(_id(scenario_id), self.form(), self.prefix)
        self.back_to(f"scenarios/{scenario_id}")


class EditScenarioPage(ScenarioBase):
    @web.authenticated
    def get(self, scenario_id):
        self.require_organiser()
        scenario = self.scenarios.get(_id(scenario_id), organiser=True, prefix=self.prefix)
        self.render("scenario_edit.html", scenario=scenario, new=False)


class ScenarioAction(ScenarioBase):
    """Form posts on a scenario: apply (members), delete (organisers)."""

    @web.authenticated
    def post(self, scenario_id, action):
        if action == "delete":
            self.require_organiser()
            self.scenarios.delete(_id(scenario_id))
            self.back_to("scenarios")
            return
        app = self.scenarios.apply(_id(scenario_id), self.user, self.payload())
        self.back_to(f"scenarios/applications/{app['id']}")


class ScenarioReviewPage(ScenarioBase):
    @web.authenticated
    def get(self):
        self.require_organiser()
        status = self.status_filter()
        self.render("scenario_review.html", applications=self.scenarios.applications(status=status), status=status)


class ScenarioApplicationPage(ScenarioBase):
    @web.authenticated
    def get(self, app_id):
        app = self.scenarios.application(_id(app_id), None if self.organiser else self.user)
        self.render("scenario_application.html", app=app, fields=APPLICATION_FIELDS)

    @web.authenticated
    def post(self, app_id):
        data = self.payload()
        if "status" in data or "comment" in data:
            self.require_organiser()
            self.scenarios.review(_id(app_id), self.user, data)
        else:
            self.scenarios.resubmit(_id(app_id), self.user, data)
        self.back_to(f"scenarios/applications/{app_id}")


class ScenarioApplicationsCsv(ScenarioBase):
    @web.authenticated
    def get(self):
        self.require_organiser()
        scenario = self.get_query_argument("scenario", "")
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", 'attachment; filename="scenario-applications.csv"')
        self.finish(self.scenarios.csv(_id(scenario) if scenario.isdigit() else None))


class PartnerPage(ScenarioBase):
    """The partner contact's read-only list of accepted applications: no login; the link is the key."""

    async def prepare(self):
        await super().prepare()
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Robots-Tag", "noindex")

    def get(self, token):
        scenario, accepted = self.scenarios.for_partner(token, self.prefix)
        self.finish(_templates.get_template("scenario_partner.html").render(
            prefix=self.prefix, hub_prefix=self.service.hub_url, scenario=scenario, applications=accepted))


# ------------------------------------------------------------------ JSON API


class ScenariosApi(ScenarioBase, ApiBase):
    @web.authenticated
    def get(self):
        self.send_json({"scenarios": self.scenarios.list(organiser=self.organiser, prefix=self.prefix)})

    @web.authenticated
    def post(self):
        self.require_organiser()
        self.send_json(self.scenarios.create(self.payload(), self.user, self.prefix), 201)


class ScenarioApi(ScenarioBase, ApiBase):
    @web.authenticated
    def get(self, scenario_id):
        self.send_json(self.scenarios.get(_id(scenario_id), organiser=self.organiser, prefix=self.prefix))

    @web.authenticated
    def patch(self, scenario_id):
        self.require_organiser()
        self.send_json(self.scenarios.update(_id(scenario_id), self.payload(), self.prefix))

    @web.authenticated
    def delete(self, scenario_id):
        self.require_organiser()
        self.scenarios.delete(_id(scenario_id))
        self.set_status(204)
        self.finish()


class ScenarioApplicationsApi(ScenarioBase, ApiBase):
    """``GET``: the scenario's applications (organisers); ``POST``: apply."""

    @web.authenticated
    def get(self, scenario_id):
        self.require_organiser()
        self.scenarios.get(_id(scenario_id), organiser=True)
        self.send_json({"applications": self.scenarios.applications(scenario_id=_id(scenario_id),
                                                                    status=self.status_filter())})

    @web.authenticated
    def post(self, scenario_id):
        self.send_json(self.scenarios.apply(_id(scenario_id), self.user, self.payload()), 201)


class AllScenarioApplicationsApi(ScenarioBase, ApiBase):
    @web.authenticated
    def get(self):
        status = self.status_filter()
        if self.get_query_argument("mine", ""):
            self.send_json({"applications": self.scenarios.applications(user=self.user, status=status)})
            return
        self.require_organiser()
        self.send_json({"applications": self.scenarios.applications(status=status)})


class ScenarioApplicationApi(ScenarioBase, ApiBase):
    @web.authenticated
    def get(self, app_id):
        self.send_json(self.scenarios.application(_id(app_id), None if self.organiser else self.user))

    @web.authenticated
    def patch(self, app_id):
        """Organisers: ``{"status", "if_status", "comment"}``; the applicant: new answers after needs_info."""
        data = self.payload()
        if {"status", "comment", "if_status"} & set(data):
            self.require_organiser()
            self.send_json(self.scenarios.review(_id(app_id), self.user, data))
        else:
            self.send_json(self.scenarios.resubmit(_id(app_id), self.user, data))


def routes(args: dict) -> list[tuple]:
    """The scenario routes, for the service's ``handlers()``."""
    extra = {**args, "scenarios": ScenarioStore(args["store"])}
    n = r"(\d{1,12})"
    return [
        ("scenarios", ScenariosPage, extra),
        ("scenarios/new", NewScenarioPage, extra),
        (f"scenarios/{n}", ScenarioPage, extra),
        (f"scenarios/{n}/edit", EditScenarioPage, extra),
        (f"scenarios/{n}/(apply|delete)", ScenarioAction, extra),
        ("scenarios/review", ScenarioReviewPage, extra),
        (f"scenarios/applications/{n}", ScenarioApplicationPage, extra),
        ("scenarios/applications.csv", ScenarioApplicationsCsv, extra),
        (f"scenarios/partner/{TOKEN}", PartnerPage, extra),
        ("api/scenarios", ScenariosApi, extra),
        (f"api/scenarios/{n}", ScenarioApi, extra),
        (f"api/scenarios/{n}/applications", ScenarioApplicationsApi, extra),
        ("api/scenario-applications", AllScenarioApplicationsApi, extra),
        (f"api/scenario-applications/{n}", ScenarioApplicationApi, extra),
    ]
