"""The review desk as one Starlette application, built by `create_app` from the settings.

Views are thin: they check the login, the role and the form's CSRF token, call the desk's
operations (`bot.web.desk`, `bot.web.groups`, `bot.searching`) and render a template. Jinja
autoescaping is on everywhere: post text is hostile.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot import storage
from bot.config import Settings
from bot.storage import reviews
from bot.storage.problems import unlooked_post, unlooked_posts
from bot.storage.reviews import Decision, Role, User
from bot.web import charts, media
from bot.web.desk import DECISION_LABELS, DecisionError, Desk, reason_ru
from bot.web.groups import GroupError, add_group, groups_overview, remove_group, switch_group
from bot.web.security import (
    CSRF_FIELD,
    CrossSiteRefusal,
    LoginLimiter,
    csrf_token,
    csrf_valid,
    load_secret_key,
    scrub,
    verify_password,
    verify_unknown_user,
)

__all__ = ["create_app"]

logger = logging.getLogger("petmatch.web")

PACKAGE_DIR = Path(__file__).resolve().parent
MAX_UPLOAD_BYTES = 15 * 1024 * 1024
UNLOOKED_PAGE_SIZE = 200  # posts that could not be looked at, most recently tried first
SPECIES_RU = {"cat": "кошка", "dog": "собака", "unknown": "не указано"}
KIND_RU = {
    "lost": "потерян",
    "found": "найден",
    "unknown": "потерян или найден — не ясно",
    "other": "другое",
    "resolved": "нашёлся",
}
BUCKET_RU = {
    "uncertain": "бот не уверен",
    "held": "бот уверен, но не написал",
    "sample": "проверка автоматического комментария",
}

Handler = Callable[[Request], Awaitable[Response]]


def create_app(
    settings: Settings,
    *,
    sessions: storage.SessionFactory | None = None,
    vision: Any = None,
    gateway_factory: Callable[[], Any] | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    monotonic: Callable[[], float] | None = None,
) -> Starlette:
    """The desk application on `settings`' database. `vision` (segmenter, embedder, policy)
    and `gateway_factory` let tests hand in fakes; by default they are built on first use."""
    if sessions is None:
        engine = storage.open_database(settings.database_url)
        storage.ensure_migrated(engine)
        sessions = storage.session_factory(engine)
    gateway_factory = gateway_factory or (lambda: _default_gateway(settings))
    desk = Desk(settings, sessions, gateway_factory=gateway_factory, clock=clock)
    limiter_args = {"clock": monotonic} if monotonic else {}
    state = _DeskState(
        settings=settings,
        sessions=sessions,
        desk=desk,
        gateway_factory=gateway_factory,
        clock=clock,
        limiter=LoginLimiter(
            settings.web.login_failures_allowed,
            settings.web.login_lockout_seconds,
            **limiter_args,
        ),
        vision=vision,
        templates=_templates(settings.commenting.timezone),
    )
    views = _Views(state)
    secret_file = settings.web.secret_key_file or settings.var_dir / "web_secret_key"
    app = Starlette(
        routes=[
            Route("/healthz", views.healthz),
            Route("/login", views.login, methods=["GET", "POST"]),
            Route("/logout", views.logout, methods=["POST"]),
            Route("/", views.home),
            Route("/queue", views.queue),
            Route("/review/{match_id:int}", views.review, methods=["POST"]),
            Route("/pair/{match_id:int}", views.pair),
            Route("/post/{post_pk:int}", views.post),
            Route("/search", views.search, methods=["GET", "POST"]),
            Route("/groups", views.groups, methods=["GET"]),
            Route("/groups/add", views.groups_add, methods=["POST"]),
            Route("/groups/{vk_id:int}/switch", views.groups_switch, methods=["POST"]),
            Route("/groups/{vk_id:int}/remove", views.groups_remove, methods=["POST"]),
            Route("/dashboard", views.dashboard),
            Route("/unlooked", views.unlooked),
            Route("/photo/{item_id:int}", views.photo),
            Route("/crop/{item_id:int}", views.crop),
            Mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static"),
        ],
        middleware=[
            Middleware(CrossSiteRefusal),
            Middleware(
                SessionMiddleware,
                secret_key=load_secret_key(Path(secret_file)),
                session_cookie="petmatch_session",
                max_age=int(settings.web.session_hours * 3600),
                same_site="lax",
                https_only=settings.web.secure_cookies,
            ),
        ],
        exception_handlers={HTTPException: views.http_error},
    )
    app.state.desk = state
    return app


def _default_gateway(settings: Settings) -> Any:
    """The gateway `petmatch run` uses (the reading and commenting credentials, comments as
    the bot's community with `from_group`); None when nothing can read (a confirmed comment
    then waits, pending, for the scheduler)."""
    from bot.vk.credentials import CredentialError, open_vk_gateway

    try:
        return open_vk_gateway(settings.vk)
    except CredentialError as exc:
        logger.warning("the desk cannot reach VK: %s", exc)
        return None


class _DeskState:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)
        self.settings: Settings
        self.sessions: storage.SessionFactory
        self.desk: Desk
        self.limiter: LoginLimiter
        self.clock: Callable[[], datetime]
        self.gateway_factory: Callable[[], Any]
        self.vision: Any
        self.templates: jinja2.Environment
        self._vision_lock = asyncio.Lock()

    def secrets(self) -> tuple[str, ...]:
        return self._secrets

    @functools.cached_property
    def _secrets(self) -> tuple[str, ...]:
        """Every configured VK token (values and files), to scrub from anything shown."""
        from bot.vk.credentials import CredentialError, comment_credential, read_credential

        found = [t.get_secret_value() for t in (self.settings.vk.token,) if t is not None]
        for load in (read_credential, comment_credential):
            try:
                credential = load(self.settings.vk)
            except CredentialError:
                continue
            if credential is not None:
                found.append(credential.secret.get_secret_value())
        return tuple(dict.fromkeys(s for s in found if s.strip()))


def _templates(timezone: str = "UTC") -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("bot.web", "templates"),
        autoescape=True,  # everywhere, not only .html: post text is hostile
        undefined=jinja2.StrictUndefined,
    )
    env.globals.update(
        SPECIES_RU=SPECIES_RU,
        KIND_RU=KIND_RU,
        BUCKET_RU=BUCKET_RU,
        DECISION_LABELS=DECISION_LABELS,
        reason_ru=reason_ru,
        timezone=timezone,
    )
    zone = ZoneInfo(timezone)  # dates as the volunteers' clocks show them
    env.filters["dt"] = lambda v: "—" if v is None else f"{v.astimezone(zone):%d.%m.%Y %H:%M}"
    env.filters["pct"] = lambda v: f"{100 * v:.0f}%"
    return env


def _login_required(role: Role | None = None) -> Callable[[Handler], Handler]:
    """The view needs a logged-in, existing user (of `role`, when given)."""

    def wrap(view: Callable[..., Awaitable[Response]]) -> Handler:
        @wraps(view)
        async def checked(self: _Views, request: Request) -> Response:
            user = self.current_user(request)
            if user is None:
                return RedirectResponse("/login", status_code=303)
            if role is not None and user.role is not role:
                return self.render(
                    request, "error.html", user=user, status=403,
                    message="Эта страница только для администраторов.",
                )
            request.state.user = user
            return await view(self, request)

        return checked  # type: ignore[return-value]

    return wrap


async def _checked_form(request: Request) -> FormData:
    """The posted form, refused (403) without the session's CSRF token."""
    form = await request.form(max_part_size=MAX_UPLOAD_BYTES)
    if not csrf_valid(request.session, form.get(CSRF_FIELD)):
        raise HTTPException(403, "Форма устарела или пришла не с этой страницы (нет CSRF-токена).")
    return form


class _Views:
    def __init__(self, state: _DeskState) -> None:
        self.s = state

    # ---- helpers ------------------------------------------------------------------------

    def current_user(self, request: Request) -> User | None:
        user_id = request.session.get("user_id")
        if not isinstance(user_id, int):
            return None
        with storage.session_scope(self.s.sessions) as session:
            user = reviews.get_user(session, user_id)
        if user is None:  # removed while logged in
            request.session.clear()
        return user

    def render(
        self, request: Request, template: str, *, status: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("user", getattr(request.state, "user", None))
        context.setdefault("flash", request.session.pop("flash", None))
        html = self.s.templates.get_template(template).render(
            csrf=csrf_token(request.session),
            scrub=lambda text: scrub(text, self.s.secrets()),
            path=request.url.path,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    def flash_redirect(self, request: Request, url: str, message: str) -> RedirectResponse:
        request.session["flash"] = scrub(message, self.s.secrets())
        return RedirectResponse(url, status_code=303)

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if request.url.path.startswith(("/photo/", "/crop/", "/static/")):
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        return self.render(
            request, "error.html", status=exc.status_code, user=self.current_user(request),
            message=scrub(str(exc.detail), self.s.secrets()),
        )

    # ---- pages --------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        from sqlalchemy import text

        with storage.session_scope(self.s.sessions) as session:
            session.execute(text("SELECT 1"))
        return PlainTextResponse("ok")

    async def home(self, request: Request) -> Response:
        return RedirectResponse("/queue" if self.current_user(request) else "/login", 303)

    async def login(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "login.html", user=None, error=None, name="")
        form = await _checked_form(request)
        name = str(form.get("name", "")).strip()[:64]
        password = str(form.get("password", ""))
        client = request.client.host if request.client else "?"
        keys = (f"name:{name.lower()}", f"addr:{client}")
        wait = self.s.limiter.wait_seconds(*keys)
        if wait > 0:
            return self.render(
                request, "login.html", status=429, user=None, name=name,
                error=f"Слишком много неудачных попыток. Подождите {int(wait) + 1} с.",
            )
        with storage.session_scope(self.s.sessions) as session:
            user = reviews.find_user(session, name)
        ok = await asyncio.to_thread(
            lambda: verify_password(user.password_hash, password)
            if user is not None
            else verify_unknown_user(password)
        )
        if not ok or user is None:
            self.s.limiter.failed(*keys)
            logger.warning("desk: failed login for %r from %s", name, client)
            return self.render(
                request, "login.html", status=401, user=None, name=name,
                error="Неверное имя или пароль.",
            )
        self.s.limiter.succeeded(*keys)
        with storage.session_scope(self.s.sessions) as session:
            reviews.touch_login(session, user.id, now=self.s.clock())
        request.session.clear()  # a fresh session (and CSRF token) after login
        request.session["user_id"] = user.id
        logger.info("desk: %s logged in", user.name)
        return RedirectResponse("/queue", status_code=303)

    async def logout(self, request: Request) -> Response:
        await _checked_form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @_login_required()
    async def queue(self, request: Request) -> Response:
        params = request.query_params
        city = params.get("city") or None
        species = params.get("species") or None
        page = _positive_int(params.get("page"), 1)
        cards, total = await asyncio.to_thread(
            self.s.desk.queue, request.state.user, city=city, species=species, page=page
        )
        with storage.session_scope(self.s.sessions) as session:
            cities = reviews.label_cities(session)
        size = self.s.settings.web.queue_page_size
        return self.render(
            request, "queue.html", cards=cards, total=total, page=page,
            pages=max(1, -(-total // size)), city=city or "", species=species or "",
            cities=cities,
        )

    @_login_required()
    async def pair(self, request: Request) -> Response:
        card = await asyncio.to_thread(self.s.desk.card, request.path_params["match_id"])
        if card is None:
            raise HTTPException(404, "Такой пары нет.")
        with storage.session_scope(self.s.sessions) as session:
            history = reviews.reviews_of_match(session, card.match.id)
        return self.render(request, "pair.html", card=card, history=history)

    @_login_required()
    async def review(self, request: Request) -> Response:
        form = await _checked_form(request)
        match_id = request.path_params["match_id"]
        back = _local_url(str(form.get("next", "")), "/queue")
        try:
            decision = Decision(str(form.get("decision", "")))
        except ValueError:
            raise HTTPException(400, "Неизвестное решение.") from None
        try:
            outcome = await asyncio.to_thread(
                self.s.desk.decide, request.state.user, match_id, decision
            )
        except DecisionError as exc:
            request.session["flash"] = str(exc)
            return RedirectResponse(back, status_code=303)
        request.session["flash"] = outcome.message
        task = (
            BackgroundTask(self.s.desk.send_comment, match_id) if outcome.send_comment else None
        )
        return RedirectResponse(back, status_code=303, background=task)

    @_login_required()
    async def post(self, request: Request) -> Response:
        from bot.storage import pipeline as store

        post_pk = request.path_params["post_pk"]
        with storage.session_scope(self.s.sessions) as session:
            view = reviews.post_views(session, [post_pk]).get(post_pk)
            if view is None:
                raise HTTPException(404, "Такой записи нет.")
            matches = store.matches_of_post(session, post_pk, accepted_only=False)
            other_pks = [
                m.found_post_pk if m.lost_post_pk == post_pk else m.lost_post_pk for m in matches
            ]
            others = reviews.post_views(session, other_pks)
            decided = {m.id: reviews.latest_decision(session, m.id) for m in matches}
            unlooked = unlooked_post(session, post_pk)
        candidates = sorted(
            (
                (m, others[m.found_post_pk if m.lost_post_pk == post_pk else m.lost_post_pk])
                for m in matches
            ),
            key=lambda pair: -pair[0].confidence,
        )
        return self.render(
            request, "post.html", view=view, candidates=candidates, decided=decided,
            unlooked=unlooked, max_attempts=self.s.settings.processing.max_attempts,
        )

    @_login_required()
    async def search(self, request: Request) -> Response:
        context: dict[str, Any] = {
            "results": None, "error": None, "city": "", "species": "", "kind": "",
        }
        if request.method == "POST":
            form = await _checked_form(request)
            context.update(
                city=str(form.get("city", "")).strip(),
                species=str(form.get("species", "")),
                kind=str(form.get("kind", "")),
            )
            upload = form.get("photo")
            data = b""
            if isinstance(upload, UploadFile):
                data = await upload.read(MAX_UPLOAD_BYTES + 1)
            await form.close()  # the upload's temporary file goes now
            if not data:
                context["error"] = "Выберите фото."
            else:
                try:
                    context["results"] = await asyncio.to_thread(
                        self._search, data, context["city"], context["species"], context["kind"]
                    )
                except ValueError as exc:
                    context["error"] = str(exc)
        return self.render(request, "search.html", **context)

    def _search(self, data: bytes, city: str, species: str, kind: str) -> list[dict[str, Any]]:
        from bot.photos import BadPhotoError, inspect_photo
        from bot.searching import search_photo

        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError("Фото больше 15 МБ.")
        try:
            content = inspect_photo(data, max_pixels=self.s.settings.vk.max_photo_pixels)
        except BadPhotoError as exc:
            raise ValueError("Это не фото, которое можно прочитать.") from exc
        if self.s.vision is None:
            from bot.pipeline import build_vision

            try:
                self.s.vision = build_vision(self.s.settings)
            except FileNotFoundError as exc:  # models not exported yet
                logger.error("desk search: %s", exc)
                message = "Модели не подготовлены: нужен `petmatch models prepare`."
                raise ValueError(message) from exc
        with tempfile.TemporaryDirectory(prefix="petmatch-search-") as folder:
            path = Path(folder) / f"upload{content.extension}"  # our name, never the user's
            path.write_bytes(data)
            results = search_photo(
                self.s.settings,
                self.s.sessions,
                path,
                city=city or None,
                species=species if species in ("cat", "dog") else None,
                kind=kind if kind in ("lost", "found") else None,
                top=10,
                vision=self.s.vision,
            )
        return self._with_posts(results)

    def _with_posts(self, results: list[Any]) -> list[dict[str, Any]]:
        rows = []
        with storage.session_scope(self.s.sessions) as session:
            for result in results:
                found = re.search(r"wall(-?\d+)_(\d+)$", result.url)
                post = (
                    storage.get_post(session, int(found.group(1)), int(found.group(2)))
                    if found
                    else None
                )
                view = reviews.post_views(session, [post.id]).get(post.id) if post else None
                rows.append({"result": result, "view": view})
        return rows

    @_login_required(Role.ADMIN)
    async def groups(self, request: Request) -> Response:
        overview = groups_overview(self.s.settings, self.s.sessions, now=self.s.clock())
        return self.render(request, "groups.html", **overview)

    @_login_required(Role.ADMIN)
    async def groups_add(self, request: Request) -> Response:
        form = await _checked_form(request)
        ref = str(form.get("ref", "")).strip()
        if not ref:
            return self.flash_redirect(request, "/groups", "Укажите ссылку на группу.")

        def add() -> str:
            gateway = self.s.gateway_factory()
            try:
                group, created = add_group(
                    self.s.sessions, gateway, ref,
                    city=str(form.get("city", "")).strip() or None,
                    comments=form.get("comments") == "on",
                    shadow=form.get("shadow") == "on",
                    now=self.s.clock(),
                )
            finally:
                if gateway is not None:
                    gateway.close()
            verb = "Добавлена" if created else "Обновлена"
            return f"{verb} группа {group.screen_name} ({group.title})."

        try:
            message = await asyncio.to_thread(add)
        except GroupError as exc:
            message = str(exc)
        return self.flash_redirect(request, "/groups", message)

    @_login_required(Role.ADMIN)
    async def groups_switch(self, request: Request) -> Response:
        form = await _checked_form(request)
        flags = {
            name: {"on": True, "off": False}.get(str(form.get(name, "")))
            for name in ("comments", "shadow")
        }
        try:
            group = switch_group(
                self.s.sessions, request.path_params["vk_id"], now=self.s.clock(), **flags
            )
        except GroupError as exc:
            return self.flash_redirect(request, "/groups", str(exc))
        state = "включены" if group.comments_enabled else "выключены"
        shadow = ", теневой режим" if group.shadow_mode else ""
        return self.flash_redirect(
            request, "/groups", f"{group.screen_name}: комментарии {state}{shadow}."
        )

    @_login_required(Role.ADMIN)
    async def groups_remove(self, request: Request) -> Response:
        await _checked_form(request)
        try:
            group = remove_group(self.s.sessions, request.path_params["vk_id"])
        except GroupError as exc:
            return self.flash_redirect(request, "/groups", str(exc))
        return self.flash_redirect(request, "/groups", f"Группа {group.screen_name} удалена.")

    @_login_required()
    async def dashboard(self, request: Request) -> Response:
        params = request.query_params
        span = min(90, _positive_int(params.get("days"), 14))
        try:
            end = date.fromisoformat(params["end"]) if params.get("end") else None
        except ValueError:
            end = None
        end = end or self.s.clock().date()
        days = [end - timedelta(days=span - 1 - i) for i in range(span)]
        with storage.session_scope(self.s.sessions) as session:
            counts = reviews.daily_counts(session, days)
        titles = {
            "posts": "Прочитано записей",
            "animals": "Найдено животных",
            "candidates": "Кандидатов в пары",
            "auto_comments": "Автоматических комментариев",
            "reviews": "Решений волонтёров",
            "reunions": "Подтверждённых воссоединений",
        }
        svgs = [
            (key, titles[key], sum(values), charts.bar_chart(titles[key], days, values))
            for key, values in counts.series.items()
        ]
        return self.render(
            request, "dashboard.html", counts=counts, charts=svgs, end=end, span=span
        )

    @_login_required()
    async def unlooked(self, request: Request) -> Response:
        """Posts whose photos could not be looked at (the same list `matches list` ends with)."""
        with storage.session_scope(self.s.sessions) as session:
            items = unlooked_posts(session, limit=UNLOOKED_PAGE_SIZE)
        return self.render(
            request, "unlooked.html",
            waiting=[i for i in items if not i.failed],
            failed=[i for i in items if i.failed],
            max_attempts=self.s.settings.processing.max_attempts,
            limit=UNLOOKED_PAGE_SIZE,
        )

    async def photo(self, request: Request) -> Response:
        return await self._image(request, "photo")

    async def crop(self, request: Request) -> Response:
        return await self._image(request, "crop")

    async def _image(self, request: Request, kind: media.ImageKind) -> Response:
        if self.current_user(request) is None:
            raise HTTPException(401, "Нужно войти.")
        found = media.read_image(
            self.s.settings, self.s.sessions, kind, request.path_params["item_id"]
        )
        if found is None:
            raise HTTPException(404, "Нет такого изображения.")
        data, media_type = found
        return Response(
            data,
            media_type=media_type,
            headers={"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )


def _positive_int(value: str | None, default: int) -> int:
    try:
        return max(1, int(value)) if value else default
    except ValueError:
        return default


def _local_url(value: str, default: str) -> str:
    """Only a path on this site (never another host) is followed after a form."""
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default
