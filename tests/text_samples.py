"""Market headlines in languages other than English, written the way wire services and financial
sites in each country phrase them, for the tests of text screening."""

from __future__ import annotations

FRENCH = (
    "Le CAC 40 termine en baisse de 1,2 % sous la pression des valeurs bancaires",
    "TotalEnergies relève son dividende après un bénéfice record au troisième trimestre",
    "L'action Renault chute de 8 % après un avertissement sur ses résultats",
    "LVMH : le chiffre d'affaires du premier semestre dépasse les attentes des analystes",
    "Air France-KLM annonce un plan d'économies de 450 millions d'euros",
    "La BCE maintient ses taux directeurs inchangés, les marchés saluent la décision",
    "Kering recule en Bourse après la publication de ventes décevantes en Asie",
    "Sanofi confirme ses objectifs annuels malgré la baisse des ventes de vaccins",
    "Orange va supprimer 2 000 postes d'ici à la fin de l'année prochaine",
    "Le titre Atos s'envole de 15 % après l'accord avec ses créanciers",
    "BNP Paribas publie un bénéfice net en hausse de 6 % au deuxième trimestre",
    "Les marchés européens ouvrent en repli, inquiets de l'inflation américaine",
)
GERMAN = (
    "DAX schließt mit Verlusten, Autowerte unter Druck",
    "Siemens hebt Prognose nach starkem Quartal an",
    "Die Aktie der Deutschen Bank fällt nach enttäuschenden Zahlen um sieben Prozent",
    "Volkswagen senkt Ausblick für das laufende Geschäftsjahr",
    "Bayer kündigt den Abbau weiterer Stellen in der Verwaltung an",
    "Allianz übertrifft die Gewinnerwartungen der Analysten deutlich",
    "Zalando-Aktie bricht nach Gewinnwarnung ein",
    "SAP steigert den Umsatz im Cloudgeschäft um ein Viertel",
    "Lufthansa erhöht die Dividende und kauft eigene Aktien zurück",
    "Anleger flüchten aus Chemiewerten, BASF verliert deutlich",
    "Die Europäische Zentralbank lässt den Leitzins unverändert",
    "Rheinmetall erhält Großauftrag über zwei Milliarden Euro",
)
SPANISH = (
    "El Ibex 35 cierra la sesión con una caída del 1,5 %",
    "Inditex dispara su beneficio un 30 % en el primer semestre",
    "Las acciones de Telefónica se desploman tras recortar el dividendo",
    "Banco Santander supera las previsiones de los analistas en el tercer trimestre",
    "Repsol anuncia una recompra de acciones por valor de 1.000 millones de euros",
    "Iberdrola eleva sus previsiones de beneficio para este año",
    "Grifols se hunde en bolsa tras el informe de un fondo bajista",
    "El BBVA registra un beneficio récord gracias a la subida de tipos",
    "Naturgy rebaja su guía anual por la caída de los precios del gas",
    "Los inversores castigan a Meliá tras la publicación de sus resultados",
    "La bolsa española abre en verde animada por los bancos",
    "Acciona gana un contrato de 500 millones para construir una autopista en Australia",
)
ITALIAN = (
    "Piazza Affari chiude in calo, pesano le banche",
    "Enel alza le stime sull'utile dopo un trimestre sopra le attese",
    "Il titolo Stellantis crolla dopo il taglio delle previsioni",
    "Intesa Sanpaolo annuncia un nuovo piano di riacquisto di azioni proprie",
    "Telecom Italia cede la rete e il titolo vola in Borsa",
    "Ferrari chiude il semestre con ricavi in crescita del 12 per cento",
)
PORTUGUESE = (
    "Ibovespa fecha em queda com pressão das ações da Petrobras",
    "Vale registra lucro acima do esperado no terceiro trimestre",
    "Ações do Itaú sobem após banco elevar projeções para o ano",
    "Magazine Luiza despenca na bolsa depois de prejuízo bilionário",
    "A EDP anuncia a venda de parques eólicos por 600 milhões de euros",
    "Investidores retiram dinheiro de fundos de ações pelo terceiro mês seguido",
)
DUTCH = (
    "AEX sluit lager door verliezen bij chipfondsen",
    "ASML verhoogt de verwachtingen na een sterk kwartaal",
    "Aandeel Philips keldert na nieuwe terugroepactie",
    "ING koopt voor 2,5 miljard euro aan eigen aandelen in",
    "Ahold Delhaize zet omzetgroei door in de Verenigde Staten",
    "Beleggers reageren teleurgesteld op de cijfers van Heineken",
)
RUSSIAN = (
    "акции упали на 10%",
    "Акции Сбербанка выросли на 3% после публикации отчётности",
    "Индекс Мосбиржи завершил торги снижением",
    "Газпром сократил чистую прибыль по итогам квартала",
    "Центробанк сохранил ключевую ставку без изменений",
    "Бумаги Яндекса подорожали на фоне сильных результатов",
)
CHINESE = (
    "股价下跌",
    "腾讯控股第三季度净利润同比增长",
    "沪深股市收盘涨跌不一",
    "阿里巴巴宣布新一轮股票回购计划",
    "比亚迪股价创下历史新高",
    "央行宣布下调存款准备金率",
)
JAPANESE = (
    "日経平均株価は大幅に反落した",
    "トヨタ自動車が通期の業績予想を上方修正",
    "ソニーグループの株価が急落",
)
OTHER_LANGUAGES = {
    "fr": FRENCH,
    "de": GERMAN,
    "es": SPANISH,
    "it": ITALIAN,
    "pt": PORTUGUESE,
    "nl": DUTCH,
    "ru": RUSSIAN,
    "zh": CHINESE,
    "ja": JAPANESE,
}
"""Headlines by the language they are written in (ISO 639-1)."""

ENGLISH_SHORTHAND = (
    "TSLA Q3 EPS $0.72 vs $0.58 est.",
    "AAPL beats estimates 😱",
    "NVDA +4% premarket",
    "MSFT up",
    "$AMD 🚀🚀",
    "BRK.B hits ATH",
    "JPM Q2 rev $42.8B vs $41.7B est; NII guide raised",
    "GOOGL -3.1% AH on capex guide",
    "SPY puts printing",
    "XOM, CVX lower as crude slides 4%",
    "META to $600? PT raised at MS",
    "BA halts 737 MAX deliveries",
    "DIS Q4: parks rev +6% y/y",
    "Fed holds at 5.25-5.50%",
    "AMZN AWS growth reaccelerates to 19%",
)
"""English headlines and posts in market shorthand: tickers, numbers and few words."""
