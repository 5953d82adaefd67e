"""Opens a report's interactive page in a real browser (Debian's headless Chromium,
driven by chromedriver through Selenium) and checks what a person would see: the 3-D
scatter is drawn, dragging it rotates the drawing, clicking a fruit in the legend hides
it, and the page logs no error.

usage: report_in_browser.py INDEX_HTML   (prints what it saw as JSON; exit 1 on a failure)
"""
import json
import os
import sys
import tempfile

os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium fetch a driver

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

# The pixels of the scatter that are not its background: how much is drawn.
DRAWN = """
const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4) if (d[i] < 250 || d[i + 1] < 250 || d[i + 2] < 250) n++;
return n;
"""


def main(path):
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="fruits-chromium-")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get("file://" + os.path.abspath(path))
        canvas = driver.find_element(By.ID, "scatter")
        image = lambda: driver.execute_script("return arguments[0].toDataURL()", canvas)
        drawn = driver.execute_script(DRAWN, canvas)
        first = image()
        ActionChains(driver).move_to_element(canvas).click_and_hold().move_by_offset(90, 40).release().perform()
        rotated = image()
        entries = driver.find_elements(By.CSS_SELECTOR, "#legend li")
        entries[0].click()
        hidden = image()
        off = "off" in (entries[0].get_attribute("class") or "")
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        driver.quit()
    seen = {
        "points_drawn_pixels": drawn,
        "legend_entries": len(entries),
        "rotating_changes_the_drawing": rotated != first,
        "hiding_a_fruit_changes_the_drawing": hidden != rotated,
        "legend_entry_marked_off": off,
        "console_errors": [e["message"] for e in errors],
    }
    print(json.dumps(seen, indent=2))
    ok = (drawn > 500 and len(entries) >= 2 and seen["rotating_changes_the_drawing"]
          and seen["hiding_a_fruit_changes_the_drawing"] and off and not errors)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
