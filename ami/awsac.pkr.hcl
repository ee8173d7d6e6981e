# awsac image recipe (Packer HCL2, validates with Packer 1.6.6 and newer).
# A stock Amazon Linux 2023 (or Ubuntu LTS) image plus the awsac boot step: the agent in
# /opt/awsac and awsac-autorun.service. No credential is baked in; instances get their rights
# from an instance profile (ami/iam/). See ami/README.md.

variable "region" {
  type        = string
  default     = "us-east-1"
  description = "AWS region to build and register the image in."
}

variable "source_ami_name" {
  type        = string
  default     = "al2023-ami-2023.*-kernel-*-x86_64"
  description = "Name filter of the base image (Ubuntu 24.04: ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*)."
}

variable "source_ami_owner" {
  type        = string
  default     = "amazon"
  description = "Owner of the base image (Ubuntu: 099720109477)."
}

variable "source_ami_architecture" {
  type    = string
  default = "x86_64"
}

variable "instance_type" {
  type        = string
  default     = "t3.small"
  description = "Instance type of the short-lived build instance."
}

variable "ssh_username" {
  type        = string
  default     = "ec2-user"
  description = "Login user of the base image (Ubuntu: ubuntu)."
}

variable "image_name_prefix" {
  type    = string
  default = "awsac"
}

variable "root_device_name" {
  type        = string
  default     = "/dev/xvda"
  description = "Root device of the base image (Ubuntu: /dev/sda1)."
}

variable "root_volume_gb" {
  type    = number
  default = 8
}

variable "subnet_id" {
  type        = string
  default     = ""
  description = "Subnet for the build instance; empty means the default VPC."
}

locals {
  build_time = timestamp()
  image_name = "${var.image_name_prefix}-${formatdate("YYYYMMDD-hhmmss", local.build_time)}"
}

source "amazon-ebs" "awsac" {
  region        = var.region
  instance_type = var.instance_type
  subnet_id     = var.subnet_id

  source_ami_filter {
    filters = {
      name                = var.source_ami_name
      architecture        = var.source_ami_architecture
      root-device-type    = "ebs"
      virtualization-type = "hvm"
    }
    owners      = [var.source_ami_owner]
    most_recent = true
  }

  ssh_username                = var.ssh_username
  ssh_timeout                 = "10m"
  associate_public_ip_address = true

  ami_name        = local.image_name
  ami_description = "awsac boot image (awsac-autorun.service), base ${var.source_ami_name}"
  ena_support     = true

  launch_block_device_mappings {
    device_name           = var.root_device_name
    volume_size           = var.root_volume_gb
    volume_type           = "gp3"
    throughput            = 125
    iops                  = 3000
    delete_on_termination = true
  }

  # Newer Packer (>= 1.7 with the amazon plugin): enforce IMDSv2 on the build instance and
  # in the registered image. Packer 1.6.6 rejects both, see ami/README.md.
  #   metadata_options { http_tokens = "required"  http_endpoint = "enabled" }
  #   imds_support = "v2.0"

  run_tags = {
    Name                = "awsac-image-build"
    "awsac:image-build" = "true"
  }
  run_volume_tags = {
    "awsac:image-build" = "true"
  }
  tags = {
    Name                    = local.image_name
    "awsac:image"           = "true"
    "awsac:base-image"      = "{{ .SourceAMI }}"
    "awsac:base-image-name" = "{{ .SourceAMIName }}"
    "awsac:built"           = local.build_time
  }
  snapshot_tags = {
    "awsac:image"      = "true"
    "awsac:base-image" = "{{ .SourceAMI }}"
  }
}

build {
  sources = ["source.amazon-ebs.awsac"]

  provisioner "shell" {
    inline = ["rm -rf /tmp/awsac-src", "mkdir -p /tmp/awsac-src/agent /tmp/awsac-src/ami"]
  }

  # The agent package (the boot step); the worker itself comes with every session archive.
  provisioner "file" {
    source      = "${path.root}/../agent/awsac_agent"
    destination = "/tmp/awsac-src/agent/"
  }

  provisioner "file" {
    source      = "${path.root}/awsac-autorun.service"
    destination = "/tmp/awsac-src/ami/awsac-autorun.service"
  }

  provisioner "shell" {
    script          = "${path.root}/provision.sh"
    execute_command = "chmod +x {{ .Path }}; sudo sh {{ .Path }} --source /tmp/awsac-src"
  }
}
