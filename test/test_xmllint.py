"""package.xml is valid against the ROS package format 3 schema (ament_xmllint) and well-formed."""
import os
import xml.etree.ElementTree as ET

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_package_xml_declares_runtime_dependencies():
    root = ET.parse(os.path.join(REPO, 'package.xml')).getroot()
    assert root.get('format') == '3'
    assert root.findtext('name') == 'sam2real'
    deps = {e.text for e in root.findall('exec_depend')}
    for dep in ('rclpy', 'sensor_msgs', 'std_msgs', 'std_srvs', 'action_msgs', 'diagnostic_msgs',
                'python3-opencv', 'python3-numpy'):
        assert dep in deps, dep
    assert root.find('export/build_type').text == 'ament_python'


@pytest.mark.linter
def test_xmllint():
    main = pytest.importorskip('ament_xmllint.main', reason='ament_xmllint needs a ROS 2 install')
    rc = main.main(argv=[])
    assert rc == 0, 'Found errors'
